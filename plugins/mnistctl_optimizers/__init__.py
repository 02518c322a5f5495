"""Optimizers. Each factory takes the parameters, lr and weight decay, with its own options."""

from mnistctl import hookimpl
from mnistctl.registry import Spec


def sgd(params, lr=0.05, weight_decay=0.0, momentum=0.9, nesterov=True):
    from torch.optim import SGD

    return SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)


def adam(params, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    from torch.optim import Adam

    return Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)


def adamw(params, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999)):
    from torch.optim import AdamW

    return AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)


def adadelta(params, lr=1.0, weight_decay=0.0, rho=0.9):
    from torch.optim import Adadelta

    return Adadelta(params, lr=lr, weight_decay=weight_decay, rho=rho)


@hookimpl
def register_optimizers(register):
    register(Spec("sgd", sgd, "SGD with (Nesterov) momentum"))
    register(Spec("adam", adam, "Adam"))
    register(Spec("adamw", adamw, "AdamW: Adam with decoupled weight decay"))
    register(Spec("adadelta", adadelta, "Adadelta, as in the PyTorch MNIST example"))

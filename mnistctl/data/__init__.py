"""Data in: MNIST-format sets held in memory, batch augmentation, and images prepared for predict."""

from mnistctl.data.augment import augment, normalize
from mnistctl.data.mnist import (
    ENV_VAR,
    FILES,
    MNIST_MD5,
    Dataset,
    cache_dir,
    load,
    load_cached,
    locate,
    parse_idx,
    resolve,
    run_split,
    split_indices,
    write_idx,
)

__all__ = ["ENV_VAR", "FILES", "MNIST_MD5", "Dataset", "augment", "cache_dir", "load", "load_cached", "locate", "normalize", "parse_idx", "resolve", "run_split", "split_indices", "write_idx"]

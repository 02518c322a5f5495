from mnistctl.cli import main

main()

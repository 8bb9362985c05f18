"""``python -m airgate``: the same command line as the ``airgate`` script."""

from airgate.cli import main

if __name__ == "__main__":
    main(prog_name="airgate")

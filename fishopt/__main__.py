"""``python -m fishopt``: the command line (Lightning's DDP launcher re-runs commands this way too)."""

from fishopt.cli import main

if __name__ == "__main__":
    main(prog_name="fishopt")

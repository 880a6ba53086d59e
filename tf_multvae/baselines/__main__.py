import sys

from tf_multvae import cli
from tf_multvae.baselines.command import main

if __name__ == "__main__":
    cli.quiet_process("baselines")
    sys.exit(cli.end_process(main()))

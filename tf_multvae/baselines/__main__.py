import sys

from tf_multvae.baselines.command import main

if __name__ == "__main__":
    sys.exit(main())

import os
import sys

# Quiet TensorFlow's C++ start-up banner here and in Beam's worker processes
# (they inherit the environment); set before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_multvae import cli  # noqa: E402 (imports no TensorFlow)

cli.quiet_process("data_prep")

from data_prep import logs  # noqa: E402

logs.hold_import_logs()

from data_prep.pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.end_process(main()))

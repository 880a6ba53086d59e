import os
import sys

# Quiet TensorFlow's C++ start-up banner here and in Beam's worker processes
# (they inherit the environment); set before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from data_prep.pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

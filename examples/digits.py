"""An MLP on scikit-learn's digits: see tapegrad/examples/digits.py."""

from tapegrad.examples.digits import main

if __name__ == "__main__":
    main()

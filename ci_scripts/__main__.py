"""``python -m ci_scripts``: the entry point the generated workflows call."""

from ci_scripts.cli import main

if __name__ == "__main__":
    main()

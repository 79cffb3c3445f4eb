"""The product's entry point. The Gradio chat UI is tracked in issue #4; until it lands
this starts the terminal chat (`qa chat`) on the bundled corpus."""

import sys

from qa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["chat", *sys.argv[1:]]))

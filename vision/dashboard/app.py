"""The dashboard's Streamlit script, shipped in the package: ``streamlit run`` this file (``hindsight demo --serve``).

Run as a script (``__name__ == "__main__"``, as Streamlit runs it) it builds the pages; imported, it does nothing.
"""

from __future__ import annotations

from pathlib import Path

from vision.dashboard.navigation import run

#: This file, the script ``hindsight demo --serve`` hands to ``streamlit run``.
SCRIPT = Path(__file__).resolve()


def main() -> None:
    """Build the navigation and run the chosen page (:func:`vision.dashboard.navigation.run`)."""
    run()


if __name__ == "__main__":
    main()

"""Hindsight dashboard (Streamlit) from a checkout: ``streamlit run app.py``. The script itself is in the package."""

from vision.dashboard.app import main

main()

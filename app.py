"""Hindsight dashboard (Streamlit): a thin layer over :mod:`vision`. Run: ``streamlit run app.py``."""

from vision.dashboard.navigation import run

run()

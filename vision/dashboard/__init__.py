"""The Streamlit dashboard's pages and figure builders (figures are pure functions, tested without Streamlit)."""

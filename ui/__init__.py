"""Small Streamlit UI functions for app.py: controls in, figures out. No maths here."""

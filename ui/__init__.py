"""The pages' small Streamlit functions for app.py: widgets in, calls out, figures laid out. No maths, no
plotting code, no intake rules of their own.

May import: whylabel.evidence, whylabel.render, whylabel.audit, whylabel.trust, whylabel.whatif,
whylabel.explainers, whylabel.models, whylabel.store (the top floor, beside whylabel.cli, which it never
imports).
"""

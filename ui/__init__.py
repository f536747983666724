"""The app's shared parts: plot builders (plots, mask_plots), plain-language text (summary, notes)
and Streamlit widgets (widgets). Only `widgets` imports Streamlit; the rest are plain functions."""

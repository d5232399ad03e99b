"""Pure plotly figure builders (arrays / DataFrames in, `go.Figure` out); no streamlit here."""

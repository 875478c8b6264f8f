"""`strongroom load`: stream spreadsheets, JSON, Parquet and mail into an index."""

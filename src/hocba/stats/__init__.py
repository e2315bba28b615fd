"""National statistics: the Ministry's progress report, coverage and outcomes (DESIGN §5).

`views` holds the DDL (kept by `store.schema`), `queries` the named SQL the report and the
analysts share, `report` turns query results into frozen figures, `html`/`svg` draw them.
"""

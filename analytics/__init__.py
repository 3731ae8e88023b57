"""The manager's numbers (数据看板): metric definitions, the funnel, role dashboards' figures, the report builder
(自定义报表, ``reports``) and its scheduled pushes (``report_schedule``).

Every figure is one aggregate SQL query over the domains' tables, always limited to the viewer's data scope by
the same clauses the customer and loan lists use, so a figure's drill-down list shows exactly its rows.
"""

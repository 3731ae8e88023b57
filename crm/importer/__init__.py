"""Lead intake by batch import (批量导入线索): .xlsx / .xls / .ods / .csv files with Chinese headers.

The pipeline streams the file row by row, never holding it in memory:

* :mod:`limits` checks what a file would cost to open (decompression bombs, grid size, row cap);
* :mod:`sources` opens the file (sniffing what it really is) and yields raw rows;
* :mod:`headers` finds the header row and maps its Chinese column names (and their common
  variants) to fields;
* :mod:`rows` normalises and validates one row (phone, ID number, amount in yuan or 万元, term…);
* :mod:`prepare` parses, validates, blind-indexes and seals a batch and drops rows seen earlier in
  the file;
* :mod:`dedup` matches the rest against the database by blind index, in batched queries;
* :mod:`writer` creates the new customers set-based (PostgreSQL: COPY straight into the tables,
  falling back to ``INSERT … ON CONFLICT DO NOTHING`` on a race; SQLite: executemany), producing the
  same rows :func:`crm.customers.intake` would;
* :mod:`merge` merges the rows that are people already in the database (blanks filled, collisions);
* :mod:`report` spills the problem rows to an .xlsx report as they occur;
* :mod:`service` ties it together: the import job, one transaction per batch, assignment;
* :mod:`jobs` marks jobs whose run died as interrupted and re-runs them.
"""

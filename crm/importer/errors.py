"""Refusals of a whole import file (a bad row is never an exception: it goes to the report)."""

from __future__ import annotations

from core.errors import NotFound, ValidationFailed


class ImportFileInvalid(ValidationFailed):
    code = "import_file_invalid"
    message = "无法读取导入文件"


class ImportHeadersInvalid(ImportFileInvalid):
    code = "import_headers_invalid"
    message = "导入文件的表头不正确"


class ImportFileEmpty(ImportFileInvalid):
    code = "import_file_empty"
    message = "导入文件没有数据行"


class ImportJobNotFound(NotFound):
    code = "import_job_not_found"
    message = "导入任务不存在或不在您的数据范围内"

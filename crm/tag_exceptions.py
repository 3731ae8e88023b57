"""Refusals of the tags, grades and segments area."""

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class TagGroupNotFound(NotFound):
    code = "tag_group_not_found"
    message = "标签组不存在"


class TagNotFound(NotFound):
    code = "tag_not_found"
    message = "标签不存在"


class TagNameTaken(Conflict):
    code = "tag_name_taken"
    message = "同名标签已存在"


class TagGroupNotEmpty(Conflict):
    code = "tag_group_not_empty"
    message = "标签组内还有标签，请先删除组内标签"


class GradeNotFound(NotFound):
    code = "grade_not_found"
    message = "客户等级不存在"


class GradeInUse(Conflict):
    code = "grade_in_use"
    message = "该等级仍有客户在使用，不能删除"


class GradeTaken(Conflict):
    code = "grade_taken"
    message = "等级代码已存在"


class InvalidRule(ValidationFailed):
    code = "invalid_segment_rule"
    message = "分群规则不正确"


class SegmentNotFound(NotFound):
    code = "segment_not_found"
    message = "客户分群不存在"


class SegmentNameTaken(Conflict):
    code = "segment_name_taken"
    message = "同名客户分群已存在"


class SegmentEditDenied(PermissionDenied):
    code = "segment_edit_denied"
    message = "只有创建人、经理或系统管理员可以修改该分群"

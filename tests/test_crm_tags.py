"""The tag library, bulk tagging (idempotent, data-scoped, on the timeline), the WeCom intent, grades."""

import pytest
from sqlalchemy import func, select

from core import outbox, tasks
from core.errors import PermissionDenied, ValidationFailed
from crm import customers, grades, scope, tags
from crm.exceptions import CustomerNotFound
from crm.models import CustomerEvent, CustomerTag, Grade
from crm.tag_exceptions import GradeInUse, TagGroupNotEmpty, TagNameTaken, TagNotFound
from tests.factories import make_customer, make_org, make_staff


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def admin(session, org):
    return scope.Viewer.of(make_staff(session, role="admin", department=org["company"]))


@pytest.fixture
def group(session, admin):
    return tags.create_group(session, admin, "意向")


def pairs(session):
    return sorted(tuple(r) for r in session.execute(select(CustomerTag.customer_id, CustomerTag.tag_id)))


@pytest.fixture
def mark_tags_task():
    """A stand-in for the bot's task while the test runs (the real one, if loaded, is put back after)."""
    received = []
    registry = tasks.celery_app.tasks
    saved = registry.pop(tags.MARK_TAGS_TASK, None)

    @tasks.task(tags.MARK_TAGS_TASK)
    def mark_tags(customer_id, add_tag_ids, remove_tag_ids):
        received.append((customer_id, add_tag_ids, remove_tag_ids))

    yield received
    registry.pop(tags.MARK_TAGS_TASK, None)
    if saved is not None:
        registry[tags.MARK_TAGS_TASK] = saved


@pytest.fixture
def no_bot():
    """As if the bot package were not installed: no task takes the WeCom intent."""
    registry = tasks.celery_app.tasks
    saved = registry.pop(tags.MARK_TAGS_TASK, None)
    yield
    if saved is not None:
        registry[tags.MARK_TAGS_TASK] = saved


def test_a_group_name_is_required(session, admin):
    with pytest.raises(ValidationFailed, match="请填写标签组名称"):
        tags.create_group(session, admin, "  ")


def test_a_duplicate_group_name_is_refused(session, admin, group):
    with pytest.raises(TagNameTaken, match="标签组「意向」已存在"):
        tags.create_group(session, admin, " 意向 ")


def test_a_tag_name_is_unique_within_its_group_only(session, admin, group):
    tags.create_tag(session, admin, group.id, "高意向")
    other = tags.create_group(session, admin, "渠道")
    tags.create_tag(session, admin, other.id, "高意向")  # fine in another group
    with pytest.raises(TagNameTaken, match="已有标签「高意向」"):
        tags.create_tag(session, admin, group.id, "高意向")


def test_an_overlong_tag_name_is_refused_in_chinese(session, admin, group):
    with pytest.raises(ValidationFailed, match="不能超过 30 个字"):
        tags.create_tag(session, admin, group.id, "长" * 31)


def test_renaming_onto_an_existing_name_is_refused(session, admin, group):
    tags.create_tag(session, admin, group.id, "甲")
    b = tags.create_tag(session, admin, group.id, "乙")
    with pytest.raises(TagNameTaken):
        tags.rename_tag(session, admin, b.id, "甲")
    assert tags.rename_tag(session, admin, b.id, "丙").name == "丙"


def test_a_deleted_tag_frees_its_name_and_leaves_every_customer(session, admin, group):
    tag = tags.create_tag(session, admin, group.id, "旧标签")
    c = make_customer(session)
    tags.tag_customers(session, admin, [c.id], [tag.id])
    assert tags.delete_tag(session, admin, tag.id) == 1
    assert pairs(session) == []
    assert tags.create_tag(session, admin, group.id, "旧标签").id != tag.id


def test_a_group_with_tags_cannot_be_deleted(session, admin, group):
    tags.create_tag(session, admin, group.id, "甲")
    with pytest.raises(TagGroupNotEmpty):
        tags.delete_group(session, admin, group.id)


def test_a_salesperson_may_not_edit_the_library(session, org, group):
    sales = scope.Viewer.of(make_staff(session, department=org["team_a"]))
    with pytest.raises(PermissionDenied):
        tags.create_tag(session, sales, group.id, "甲")


def test_tagging_is_idempotent(session, admin, group):
    t1, t2 = tags.create_tag(session, admin, group.id, "甲"), tags.create_tag(session, admin, group.id, "乙")
    c1, c2 = make_customer(session), make_customer(session)
    first = tags.tag_customers(session, admin, [c1.id, c2.id], [t1.id, t2.id])
    again = tags.tag_customers(session, admin, [c1.id, c2.id], [t1.id, t2.id])
    assert (first.changed, first.customers, first.unchanged) == (4, 2, 0)
    assert (again.changed, again.unchanged) == (0, 4)
    assert len(pairs(session)) == 4


def test_tagging_writes_one_timeline_event_per_changed_customer(session, admin, group):
    t1, t2 = tags.create_tag(session, admin, group.id, "甲"), tags.create_tag(session, admin, group.id, "乙")
    c = make_customer(session)
    tags.tag_customers(session, admin, [c.id], [t1.id, t2.id])
    tags.tag_customers(session, admin, [c.id], [t1.id])  # nothing new: no event
    events = session.scalars(select(CustomerEvent).where(CustomerEvent.customer_id == c.id,
                                                         CustomerEvent.kind == "tag.add")).all()
    assert [e.summary for e in events] == ["添加标签：甲、乙"]


def test_untagging_removes_only_the_named_tags_and_is_idempotent(session, admin, group):
    t1, t2 = tags.create_tag(session, admin, group.id, "甲"), tags.create_tag(session, admin, group.id, "乙")
    c = make_customer(session)
    tags.tag_customers(session, admin, [c.id], [t1.id, t2.id])
    assert tags.untag_customers(session, admin, [c.id], [t1.id]).changed == 1
    assert tags.untag_customers(session, admin, [c.id], [t1.id]).changed == 0
    assert pairs(session) == [(c.id, t2.id)]
    assert [e.summary for e in customers.timeline(session, c.id) if e.kind == "tag.remove"] == ["移除标签：甲"]


def test_a_salesperson_tags_only_customers_in_their_scope(session, org, admin, group):
    tag = tags.create_tag(session, admin, group.id, "甲")
    sales_staff = make_staff(session, department=org["team_a"])
    mine = make_customer(session, owner=sales_staff)
    theirs = make_customer(session, owner=make_staff(session, department=org["team_b"]))
    result = tags.tag_customers(session, scope.Viewer.of(sales_staff), [mine.id, theirs.id], [tag.id])
    assert result.skipped_ids == [theirs.id]
    assert pairs(session) == [(mine.id, tag.id)]


def test_tagging_one_customer_out_of_scope_is_not_found(session, org, admin, group):
    tag = tags.create_tag(session, admin, group.id, "甲")
    sales = scope.Viewer.of(make_staff(session, department=org["team_a"]))
    theirs = make_customer(session, owner=make_staff(session, department=org["team_b"]))
    with pytest.raises(CustomerNotFound):
        tags.tag_customer(session, sales, theirs.id, [tag.id])


def test_an_unknown_or_deleted_tag_refuses_the_whole_call(session, admin, group):
    tag = tags.create_tag(session, admin, group.id, "甲")
    gone = tags.create_tag(session, admin, group.id, "乙")
    tags.delete_tag(session, admin, gone.id)
    c = make_customer(session)
    with pytest.raises(TagNotFound):
        tags.tag_customers(session, admin, [c.id], [tag.id, gone.id])
    assert pairs(session) == []


def test_wecom_intent_is_enqueued_for_wecom_tags_on_wecom_contacts(session, admin, group, mark_tags_task):
    wecom_tag = tags.create_tag(session, admin, group.id, "企微标签", wecom_tag_id="etTAG1")
    local_tag = tags.create_tag(session, admin, group.id, "本地标签")
    contact = make_customer(session, wecom_external_userid="wmCONTACT")
    plain = make_customer(session)
    tags.tag_customers(session, admin, [contact.id, plain.id], [wecom_tag.id, local_tag.id])
    tags.untag_customers(session, admin, [contact.id], [wecom_tag.id])
    sent = [(t.name, t.args) for t in outbox.pending(session)]
    assert sent == [(tags.MARK_TAGS_TASK, (contact.id, [wecom_tag.id], [])),
                    (tags.MARK_TAGS_TASK, (contact.id, [], [wecom_tag.id]))]


def test_no_wecom_intent_when_nothing_changed(session, admin, group, mark_tags_task):
    wecom_tag = tags.create_tag(session, admin, group.id, "企微标签", wecom_tag_id="etTAG1")
    contact = make_customer(session, wecom_external_userid="wmCONTACT")
    tags.tag_customers(session, admin, [contact.id], [wecom_tag.id])
    before = len(outbox.pending(session))
    tags.tag_customers(session, admin, [contact.id], [wecom_tag.id])
    assert len(outbox.pending(session)) == before == 1


def test_no_wecom_intent_without_a_registered_bot_task(session, admin, group, no_bot):
    assert not tasks.is_registered(tags.MARK_TAGS_TASK)
    wecom_tag = tags.create_tag(session, admin, group.id, "企微标签", wecom_tag_id="etTAG1")
    contact = make_customer(session, wecom_external_userid="wmCONTACT")
    assert tags.tag_customers(session, admin, [contact.id], [wecom_tag.id]).changed == 1
    assert [t for t in outbox.pending(session) if t.name == tags.MARK_TAGS_TASK] == []


def test_wecom_side_deletion_retires_the_tag(session, admin, group):
    tag = tags.create_tag(session, admin, group.id, "企微标签", wecom_tag_id="etTAG1")
    assert tags.mark_deleted_by_wecom(session, "etTAG1") is True
    assert session.get(type(tag), tag.id).deleted_at is not None
    assert tags.mark_deleted_by_wecom(session, "etTAG1") is False


# --- grades ---------------------------------------------------------------------------------------

def test_a_new_grade_is_ranked_last(session, admin):
    grade = grades.create_grade(session, admin, "e", "E 沉睡")
    assert (grade.code, grade.rank) == ("E", 5)


def test_a_duplicate_grade_code_is_refused(session, admin):
    from crm.tag_exceptions import GradeTaken

    with pytest.raises(GradeTaken):
        grades.create_grade(session, admin, "A", "重复")


def test_reordering_ranks_grades_in_the_given_order(session, admin):
    grades.reorder_grades(session, admin, ["D", "C", "B", "A"])
    assert [g.code for g in grades.list_grades(session)] == ["D", "C", "B", "A"]


def test_reordering_must_list_every_grade_once(session, admin):
    with pytest.raises(ValidationFailed, match="全部等级"):
        grades.reorder_grades(session, admin, ["A", "B", "C"])


def test_a_grade_in_use_cannot_be_deleted(session, admin):
    make_customer(session, grade="D")
    with pytest.raises(GradeInUse):
        grades.delete_grade(session, admin, "D")
    assert session.get(Grade, "D") is not None


def test_an_unused_grade_can_be_deleted(session, admin):
    grades.delete_grade(session, admin, "D")
    assert session.scalar(select(func.count()).select_from(Grade)) == 3


def test_editing_a_grade_label(session, admin):
    assert grades.edit_grade(session, admin, "a", "A 优质").label == "A 优质"

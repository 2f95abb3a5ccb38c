"""Submit the Django admin's real HTML forms the way a browser does (GET the form, POST it back)."""

from django.urls import reverse


def _management_data(response) -> dict:
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            key = f"{formset.prefix}-{name}"
            data[key] = formset.management_form.initial.get(name, field.initial) or 0
        for i, form in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{i}-id"] = form.instance.pk
            data[f"{formset.prefix}-{i}-document"] = form.instance.document_id
    return data


def _field_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, list | tuple):
        return [getattr(v, "pk", v) for v in value]
    return getattr(value, "pk", value)


def add_document(client, **fields):
    url = reverse("admin:knowledge_document_add")
    page = client.get(url)
    assert page.status_code == 200
    data = {"title": "", "body": "", "source_url": "", "collection": "", "published": "on"}
    data.update(_management_data(page))
    data.update({k: _field_value(v) for k, v in fields.items()})
    if not data.get("published"):
        data.pop("published")
    return client.post(url, data)


def change_document(client, document, **fields):
    url = reverse("admin:knowledge_document_change", args=[document.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        if name == "file":
            continue
        data[name] = _field_value(form.initial.get(name))
    data.update(_management_data(page))
    data.update({k: _field_value(v) for k, v in fields.items()})
    if not data.get("published"):
        data.pop("published", None)
    return client.post(url, data)


def run_action(client, action, documents):
    url = reverse("admin:knowledge_document_changelist")
    return client.post(
        url,
        {"action": action, "_selected_action": [d.pk for d in documents], "index": 0},
        follow=True,
    )


def delete_document(client, document):
    url = reverse("admin:knowledge_document_delete", args=[document.pk])
    return client.post(url, {"post": "yes"})

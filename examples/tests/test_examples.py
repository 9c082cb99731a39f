"""The contract every framework example keeps (tests/frameworks.rs checks
the same routes over HTTP)."""


def test_index(example):
    name, client = example
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "%s index" % name


def test_json_item(example):
    _, client = example
    response = client.get("/api/items/7")
    assert response.status_code == 200
    assert response.json["id"] == 7


def test_missing_page_is_the_custom_404(example):
    _, client = example
    response = client.get("/no/such/page")
    assert (response.status_code, response.get_data(as_text=True)) == (404, "custom not found")

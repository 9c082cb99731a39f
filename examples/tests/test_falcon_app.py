from examples.falcon_app import app as app


def test_index(client_for):
    response = client_for(app).get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "falcon index"


def test_json_item(client_for):
    response = client_for(app).get("/api/items/7")
    assert response.status_code == 200
    assert response.json["id"] == 7


def test_missing_page_is_the_custom_404(client_for):
    response = client_for(app).get("/no/such/page")
    assert (response.status_code, response.get_data(as_text=True)) == (404, "custom not found")

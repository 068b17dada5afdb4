"""Personalize Runtime GetRecommendations through a real boto3 client over HTTP."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

RECOMMENDER = "arn:aws:personalize:us-east-1:123456789012:recommender/top-picks"
CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/picks"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/exclude-watched"
COLUMNS = {"ITEMS": ["TITLE", "YEAR", "GENRES", "PLOT"]}

ITEMS = [
    {"ITEM_ID": f"i{n}", "TITLE": f"Movie {n}", "YEAR": 1990 + n, "GENRES": "Drama|War", "PLOT": f"Plot {n}"}
    for n in range(1, 7)
]
# alice has seen i1; the people who share i1 liked i2 most, then i3. i4 is the most popular elsewhere.
WATCHED = {"alice": ["i1"], "u1": ["i1", "i2"], "u2": ["i1", "i2"], "u3": ["i1", "i3"], "u4": ["i3", "i4"],
           "u5": ["i4", "i5"], "u6": ["i4", "i5"], "u7": ["i4", "i6"]}  # fmt: skip
INTERACTIONS = [
    {"USER_ID": user, "ITEM_ID": item, "TIMESTAMP": 1700000000 + n, "EVENT_TYPE": "watch"}
    for user, items in WATCHED.items()
    for n, item in enumerate(items)
]


@pytest.fixture
def loaded(emulator):
    emulator.personalize.load(RECOMMENDER, items=ITEMS, interactions=INTERACTIONS)
    return emulator


def recommend(client, user_id="alice", **request):
    answer = client.get_recommendations(recommenderArn=RECOMMENDER, userId=user_id, **request)
    return answer["itemList"]


def ids(item_list):
    return [entry["itemId"] for entry in item_list]


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_it_returns_metadata_as_strings(loaded, personalize_runtime_client):
    item_list = recommend(personalize_runtime_client, numResults=3, metadataColumns=COLUMNS)
    assert len(item_list) == 3
    first = item_list[0]
    assert first["itemId"] == "i2"
    assert first["metadata"] == {"TITLE": "Movie 2", "YEAR": "1992", "GENRES": "Drama|War", "PLOT": "Plot 2"}
    assert "metadata" not in recommend(personalize_runtime_client, numResults=1)[0]


def test_scores_fall_and_the_reply_has_a_recommendation_id(loaded, personalize_runtime_client):
    answer = personalize_runtime_client.get_recommendations(recommenderArn=RECOMMENDER, userId="alice")
    scores = [entry["score"] for entry in answer["itemList"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert answer["recommendationId"].startswith("RID-")


def test_co_watched_items_come_first_and_a_filter_removes_seen_ones(loaded, personalize_runtime_client):
    assert ids(recommend(personalize_runtime_client, filterArn=FILTER)) == ["i2", "i3", "i4", "i5", "i6"]
    assert "i1" in ids(recommend(personalize_runtime_client))


def test_an_unknown_user_gets_popular_items(loaded, personalize_runtime_client):
    assert ids(recommend(personalize_runtime_client, user_id="newcomer", numResults=2)) == ["i1", "i4"]


def test_it_is_deterministic(loaded, personalize_runtime_client):
    assert recommend(personalize_runtime_client) == recommend(personalize_runtime_client)


def test_more_than_50_with_metadata_is_invalid(loaded, personalize_runtime_client):
    with pytest.raises(ClientError) as excinfo:
        recommend(personalize_runtime_client, numResults=51, metadataColumns=COLUMNS)
    assert error_of(excinfo) == ("InvalidInputException", 400)
    assert len(recommend(personalize_runtime_client, numResults=51)) == len(ITEMS)


def test_an_unknown_arn_is_not_found(loaded, personalize_runtime_client):
    with pytest.raises(ClientError) as excinfo:
        personalize_runtime_client.get_recommendations(recommenderArn=RECOMMENDER + "-gone", userId="alice")
    assert error_of(excinfo) == ("ResourceNotFoundException", 404)


def test_campaigns_work_like_recommenders(emulator, personalize_runtime_client):
    emulator.personalize.load(CAMPAIGN, items=ITEMS, interactions=INTERACTIONS)
    client = personalize_runtime_client
    answer = client.get_recommendations(campaignArn=CAMPAIGN, userId="alice", numResults=1)
    assert ids(answer["itemList"]) == ["i2"]
    with pytest.raises(ClientError) as excinfo:
        client.get_recommendations(campaignArn=CAMPAIGN, recommenderArn=CAMPAIGN, userId="alice")
    assert error_of(excinfo) == ("InvalidInputException", 400)


def test_related_items_for_an_item_id(loaded, personalize_runtime_client):
    client = personalize_runtime_client
    answer = client.get_recommendations(recommenderArn=RECOMMENDER, itemId="i5", numResults=1)
    assert ids(answer["itemList"]) == ["i4"]


def test_promotions_are_accepted(loaded, personalize_runtime_client):
    promotion = {"name": "new", "percentPromotedItems": 20, "filterArn": FILTER}
    assert recommend(personalize_runtime_client, promotions=[promotion])


def test_faults_apply_to_personalize_too(loaded, personalize_runtime_client):
    loaded.configure(model_id=RECOMMENDER, fail_next=1)
    with pytest.raises(ClientError) as excinfo:
        recommend(personalize_runtime_client)
    assert error_of(excinfo) == ("ThrottlingException", 429)
    assert [(r.operation, r.model_id, r.status) for r in loaded.requests] == [("GetRecommendations", RECOMMENDER, 429)]


def test_data_can_be_loaded_over_http(emulator, personalize_runtime_client):
    body = json.dumps({"arn": RECOMMENDER, "items": ITEMS, "interactions": INTERACTIONS}).encode()
    request = urllib.request.Request(f"{emulator.url}/_emulator/personalize/load", data=body, method="POST")
    with urllib.request.urlopen(request) as response:
        counts = json.loads(response.read())
    assert counts == {"arn": RECOMMENDER, "items": len(ITEMS), "interactions": len(INTERACTIONS)}
    assert ids(recommend(personalize_runtime_client, numResults=1)) == ["i2"]


def test_loading_rejects_rows_without_ids(emulator):
    with pytest.raises(ValueError):
        emulator.personalize.load(RECOMMENDER, items=[{"TITLE": "No id"}])
    with pytest.raises(ValueError):
        emulator.personalize.load(RECOMMENDER, interactions=[{"USER_ID": "u1"}])

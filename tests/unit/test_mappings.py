import pytest

from engines.elasticsearch import ElasticsearchEngine
from engines.opensearch import OpenSearchEngine
from es_mappings import IndexNames, index_body
from es_mappings.schema import TEXT_ANALYZER


def test_opensearch_vectors_use_the_lucene_engine():
    # The k-NN zip from Maven has no native libraries: faiss (the default) kills the node.
    mapping = OpenSearchEngine("http://127.0.0.1:1").vector_mapping(384)
    assert mapping["type"] == "knn_vector" and mapping["dimension"] == 384
    assert mapping["method"]["engine"] == "lucene"
    assert mapping["method"]["space_type"] == "cosinesimil"


def test_elasticsearch_vectors_are_float_hnsw_cosine():
    mapping = ElasticsearchEngine("http://127.0.0.1:1").vector_mapping(384)
    assert mapping["type"] == "dense_vector" and mapping["dims"] == 384
    assert mapping["similarity"] == "cosine" and mapping["index_options"]["type"] == "hnsw"


def test_index_body_has_schema_analyzer_and_vector():
    body = index_body(vector_mapping={"type": "dense_vector", "dims": 4}, text_analyzer={"type": "english"},
                      extra_settings={"knn": True})
    props = body["mappings"]["properties"]
    assert props["vector"] == {"type": "dense_vector", "dims": 4}
    assert props["title"]["analyzer"] == TEXT_ANALYZER
    assert body["settings"]["analysis"]["analyzer"][TEXT_ANALYZER] == {"type": "english"}
    assert body["settings"]["index"]["knn"] is True
    assert {"product_id", "title", "description", "category", "brand", "attributes", "price", "image",
            "model_version", "event_version"} <= set(props)


def test_index_names():
    names = IndexNames("products")
    assert names.index(3) == "products-v3"
    assert (names.read_alias, names.write_alias) == ("products", "products-write")
    assert names.version_of("products-v12") == 12
    with pytest.raises(ValueError):
        names.version_of("other-v1")
    with pytest.raises(ValueError):
        IndexNames("Bad Prefix")


def test_the_layout_sets_shards_replicas_and_refresh():
    from es_mappings import IndexLayout

    body = index_body(vector_mapping={"type": "knn_vector", "dimension": 3}, text_analyzer={"type": "english"},
                      layout=IndexLayout(shards=2, replicas=1, refresh_interval="30s"))
    index = body["settings"]["index"]
    assert (index["number_of_shards"], index["number_of_replicas"], index["refresh_interval"]) == (2, 1, "30s")


def test_a_layout_without_shards_is_refused():
    import pytest

    from es_mappings import IndexLayout

    with pytest.raises(ValueError, match="at least 1 shard"):
        IndexLayout(shards=0)


def test_both_engines_build_the_graph_the_layout_names():
    from es_mappings import HnswGraph

    opensearch, elasticsearch = OpenSearchEngine("http://127.0.0.1:1"), ElasticsearchEngine("http://127.0.0.1:1")
    assert opensearch.vector_mapping(384)["method"]["parameters"] == {"m": 32, "ef_construction": 256}
    assert elasticsearch.vector_mapping(384)["index_options"] == {"type": "hnsw", "m": 32, "ef_construction": 256}
    small = HnswGraph(16, 128)
    assert opensearch.vector_mapping(384, graph=small)["method"]["parameters"] == {"m": 16, "ef_construction": 128}
    quantized = opensearch.vector_mapping(384, quantized=True, graph=small)["method"]["parameters"]
    assert (quantized["m"], quantized["ef_construction"], quantized["encoder"]["name"]) == (16, 128, "sq")
    assert elasticsearch.vector_mapping(384, quantized=True, graph=small)["index_options"] == {
        "type": "int8_hnsw", "m": 16, "ef_construction": 128}


def test_a_graph_is_written_m_colon_ef_construction_within_lucenes_bounds():
    from es_mappings import HnswGraph
    from settings import Settings

    assert HnswGraph.parse("32:256") == HnswGraph(32, 256)
    assert HnswGraph.parse(str(HnswGraph(24, 200))) == HnswGraph(24, 200)
    assert Settings.from_env({"INDEX_HNSW": "48:512"}).index_hnsw == HnswGraph(48, 512)
    assert Settings.from_env({}).index_hnsw == HnswGraph()
    for text in ("32", "32:", "m:ef", "32:256:1"):
        with pytest.raises(ValueError, match="M:EF_CONSTRUCTION, e.g. 32:256"):
            HnswGraph.parse(text)
    for m, ef in ((1, 100), (513, 100), (16, 0), (16, 3201)):
        with pytest.raises(ValueError, match="m in 2..512 and ef_construction in 1..3200"):
            HnswGraph(m, ef)
    with pytest.raises(ValueError, match="INDEX_HNSW='16'"):
        Settings.from_env({"INDEX_HNSW": "16"})

"""Read path: query -> normalize/rewrite -> encode -> BM25 leg + kNN leg -> normalize + blend -> hits."""

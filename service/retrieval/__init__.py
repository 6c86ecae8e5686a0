"""Retrieval: embedders, the FAISS vector index and the FAQ/template retriever."""
from service.retrieval.embedders import Embedder, get_embedder
from service.retrieval.index import IndexMismatchError, VectorIndex
from service.retrieval.retriever import Hit, KnowledgeRetriever

__all__ = ["Embedder", "get_embedder", "IndexMismatchError", "VectorIndex", "Hit", "KnowledgeRetriever"]

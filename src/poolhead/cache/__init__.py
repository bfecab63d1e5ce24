"""Frozen-backbone hidden-state cache: built in features.py, stored in store.py, read via memory maps in lookup.py."""

from poolhead.cache.features import LAST, CacheStats, FeatureCache, build_feature_cache, cache_key, default_cache_dir

__all__ = ["LAST", "CacheStats", "FeatureCache", "build_feature_cache", "cache_key", "default_cache_dir"]

"""Ground layer for data: readers, built-in datasets, split, tokenizer, batching.

Imports numpy and HuggingFace ``tokenizers`` only, never JAX, so the CLI
stays fast.
"""

from semalign.data.batching import (
    Batch,
    BatchStats,
    batch_stats,
    bucket_boundaries,
    fitted_boundaries,
    make_batches,
)
from semalign.data.builtin import (
    BUILTIN_DATASETS,
    BuiltinDataset,
    available_datasets,
    load_builtin,
)
from semalign.data.examples import Examples, check_trainable
from semalign.data.readers import READERS, read_examples
from semalign.data.split import Splits, split_examples
from semalign.data.tokenizer import (
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    TOKENIZER_KINDS,
    TRUNCATIONS,
    UNK_ID,
    encode_counted,
    encode_texts,
    load_tokenizer,
    save_tokenizer,
    tokens_of,
    train_tokenizer,
)

__all__ = [
    "BUILTIN_DATASETS",
    "CLS_ID",
    "MASK_ID",
    "PAD_ID",
    "READERS",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "TRUNCATIONS",
    "UNK_ID",
    "Batch",
    "BatchStats",
    "BuiltinDataset",
    "Examples",
    "Splits",
    "available_datasets",
    "batch_stats",
    "bucket_boundaries",
    "check_trainable",
    "encode_counted",
    "encode_texts",
    "fitted_boundaries",
    "load_builtin",
    "load_tokenizer",
    "make_batches",
    "read_examples",
    "save_tokenizer",
    "split_examples",
    "tokens_of",
    "train_tokenizer",
]

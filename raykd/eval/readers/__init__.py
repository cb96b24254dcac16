"""File-format readers for the evaluation sets. A missing file raises FileNotFoundError naming its path."""
from raykd.eval.readers.captions import CaptionData, read_caption_tsv, read_coco_captions, read_karpathy
from raykd.eval.readers.classification import read_image_folder, read_lines, read_npz_split
from raykd.eval.readers.sts import (SentencePairs, read_senteval_sts, read_sick, read_stsb_csv,
                                    read_stsb_tsv_gz)
from raykd.eval.readers.text_sets import (Triplets, WordPairs, iter_collection, read_qrels, read_queries,
                                          read_triplets_csv, read_word_pairs)

__all__ = [
    "CaptionData", "SentencePairs", "Triplets", "WordPairs", "iter_collection", "read_caption_tsv",
    "read_coco_captions", "read_image_folder", "read_karpathy", "read_lines", "read_npz_split", "read_qrels",
    "read_queries", "read_senteval_sts", "read_sick", "read_stsb_csv", "read_stsb_tsv_gz",
    "read_triplets_csv", "read_word_pairs",
]

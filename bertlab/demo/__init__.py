"""The offline demo: pretrained MiniLM fine-tuned on BBC News, both from installed packages.

``bbc`` reads the corpus, ``minilm`` builds the tokenizer, encoder and the broken/fixed
classifier setups; ``bertlab demo`` (``bertlab/cli.py``) and ``notebooks/`` use them.
"""

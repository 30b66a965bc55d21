"""Window-based NER on WikiANN English: see tapegrad/examples/ner_window.py.

    python examples/ner_window.py --epochs 5 [--glove] [--freeze-embeddings]
    python examples/ner_window.py --predict "Samuel Quinn was arrested in the Hilton Hotel in Paris in April 1989."
"""

from tapegrad.examples.ner_window import main

if __name__ == "__main__":
    main()

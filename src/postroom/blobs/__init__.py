"""Where the bytes of documents and raw e-mails live: content-addressed blobs behind one interface."""

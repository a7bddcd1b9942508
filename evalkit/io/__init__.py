"""Reading and writing files in other tools' formats (peer harnesses' prediction files)."""

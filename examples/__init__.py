"""Services built on asyncdal, as other teams would write them (not part of the library)."""

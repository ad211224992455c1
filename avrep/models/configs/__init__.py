"""Model configs (JSON) read by avrep.models.factory; a package so setuptools ships them."""

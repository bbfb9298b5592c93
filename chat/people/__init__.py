"""Who is who: names and their keys, avatars and tokens, connections and users online here."""

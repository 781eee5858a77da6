"""A coarse land mask of the world, to tell whether facilities stand on land (used to catch swapped lat/lon).

Half-degree cells (720 × 360, rows from 90° S northwards, columns from 180° W eastwards); a cell is land
when any land of Natural Earth's 1:110m countries (public domain, naturalearthdata.com; the copy shipped
with pyogrio's test fixtures, ``naturalearth_lowres``) touches it. It is coarse on purpose: it only has to
say that a point is within about 50 km of land, or far out at sea. Rebuilt by :func:`_build`.
"""

from __future__ import annotations

import base64
import zlib
from functools import lru_cache

import numpy as np

RESOLUTION_DEG = 0.5
_ROWS, _COLUMNS = 360, 720
_MASK = (
    "eNrtnV9vHTkVwG286nSlEgvxEkQVl09AkXgoUjZeaR945Ct0xQdo0T6QlUpmwiLlZUW/ACJ8EjKrIPqCVB73iUzJQ4WE6FSViEMmNrbHc+/8"
    "Of4zk9y3+CFtbu79jef4+Jxj+8y5St21u3bXkluzGWyFEMo3AS41mN86VSDUaDC9dTByjW5CwLZlnje8XS6KCLlcKP9iRc69l1bq5CZdJh4l"
    "xwjV3vtJkbKHXVNVMHP9fLkwQIWWiBmyUXe6YIa0OldCfTYDW+BF5JU0eAncr+zupUTLprVp6iv/+GqJLCA3jiyZX3WyG5FRgGzMCl8sDZjc"
    "U8rlc3AbnA41Wmyw+vrMgn+/bXKDlva6iJD7b8gXG471Z7NT6A3z7FI9IOuJfKWnXtlTsp440HJB227zard/43Jw3eXiQOjF7iPTO5ErSUR2"
    "E7JAUFNvEDX/ftYnz5yIDUhmrZS4zJuIb/A3CZP/63RlQAb17qt55PXtD8h7APqbedJY69lwHB5PlbqKGjsPuR6/RIW+XH+S8iSdm5In78DF"
    "Ez3l15agZknzZNwuvddW71ezmCcrc6/9ZBg39AezU5QaNIIo2gIDnHUCzSLWaDbZSaGcWiqZAEYyPL7qsAAMu0gh50Xgj7RjkKrteM2ThYF4"
    "6F2k0xysr8+rTKLv6KsVKKnROvWOaIGe2IFNAyNco5mNpL6xQZtqtN4UGW+u07vort21u3bX7trClhWbIuebsvtYbYqcqU15QRoJ3Jc3pjY1"
    "glxtTDUUyjYj6VyiTGyKTDZG3lBTanPkuNbtLyTHZ8qLheRqY30WG5spYmOzW2xMN6rlHw6vym5gRcNmgd+E3GxKzllkh2q5HyQy7FOWk3HQ"
    "MmTLyFvt8If06odqkRll7c8qKI1FysGtHIJ+7kbkoDdiy6TRbnuQq2Akc10tJgeVg6pF4devW2RIkgvJrv18Y+SQ2mXLyPcdWQTJCyx0tufu"
    "WASlscDa5SpuoWl0Ux32RHXUQtPU7dOhkXNkisJyXkIWUTJZQiYd+WGEPFvOtCPv3iJ5v1UN95n9sMjU1XSuEM+0xUZy5KQjP4+QAYX2TQGi"
    "7vfH5mlYNSFxUI+IiIm3E/UJPg+gnrWAJdO0Qw/4bMTnxPDqdKVIIxdAnyvfsBR5/DRsRS5TzTZOPGdbkStAGsKn/mknbY5cT8M9WDk2R85m"
    "kHNwquQejZ1NbqBXw+Q6jSwhGRWbIGOfXtGbksltkDk0vb1kNmME+aw+85uSs1sjKw/58c3JBUCugQM+NsMiceh9WTt9sPT3OZVcQ8oVJMct"
    "P4POrzuy8pNRInl0c45MlFfOTTJZbIzcwOQiRN5JIsvpixIg077Z2F1A5j4y6U+U/SSygsh4qrV9cr2A3DmaKZn1JkqVRi4goz0lk+SJEiDr"
    "2wDsDk/ODAHJ3UsAmSVnhnDAwuDupSh5N+YHYXKNATJNJWPlJzcY8KOWnHfkh0VwPegjKwSQzQeaNgOGBE/qGOR9OnIBjFRm03BW5PgAwmQu"
    "wBCz4vbd9+KhqI9cZjC5YHEyhn1xR4a2zbQyoZuTMUBmJ5oc968LyFsm5T1p1Q9FgHmniftg1FjOIguQ/HwxOYPJPETOVLkzh9wA88czwa5T"
    "yHQBGVfoQbp1HrkrHnEcD8w+z3YquUgi41Oryiaj60mS3YfJ0MB8Y8l6ckay5zicCpt7yb88NEp0kFU3IgNudCdvDvQ/kpYIP42v2abT2+eg"
    "qeLNjhkdVqDsaZoRHZI9fSZON5nd80G3SO7SG6j504tEszEkexJZ3cHcA7N/RarEyQ2Rpyurv6CO/CJDyeQyTtY3gb/WZKakureIjGFpGA0m"
    "v9dkrsTZ75LJcir+yWrckP/cbtpFxNwnC2Bgx6pRo3uHmvxMDwpOJ9fAy9NtWPpVs/UgN6KrUh3sQDUoHH4zkakjwRq7hClS3SD4gMzI93NB"
    "1SuBLq+16GL5xJ6NPQ7vNOS1JmupiYS1BIHzxjm8V5SXTJ0KbZsPZgQFDWgBR3GMeRjhPDFjh8A7WTAZK30zHyQ+SiFjOImeg3dCDPl9gYty"
    "BrmGyXJMztV7dZgCXpGFx4cNdCCTmtyo0yQyipDL4YTVI9g8P08j8zC5GnqUwmROfD6LXHniGzF8tfi+fgWj2yAPlIOf6EFMPrSlYfJAOfI9"
    "cIkfNqOlLwoZ+KqDyEMWYTIufQEqNtERa2aS13qbiReeMJIILRvazJTz4AVPsEdqGUu6mZKbgbJU+ZRs+97YuPn5DGk0T8EQsq80duCE/Y+Y"
    "0WcBB3o9U2VjZfuj/jiNTNjI0pEAuT2b3UkbQ8oij4C6Dn7PkKkVdqJ2qOORAnjIX67Ij6iYYUSLOLmyZK0WT0hS7iG+uhwZBwo/e2gFRs36"
    "/uG9J0lirsuRQWMwWRqBbZkwf4s+TiLbZ9xDz5Z2fbYbGyZ+zliVTH4vkXeiuKu2JwnUbEeTNLJee+XKtyIyjfTJWaa1iLC0R9p0H771xKZt"
    "j/e6eMD0OTMDuZNkN3K9Ev3Wt9ay5Hud1zbkY0N+lNTnycY1gR8fdWT7+xdVkjkqImQ5JSdlvOexPl+5N/TJeVroVQZWcbpdOHG0N8csOcWp"
    "kCmZjsuUNBNyneZPIn0+ch6SdeQy6TlGrUSxEczcO5gtopFM1iZiGwXJsrsrm2JLrb3FImX8FIqQqTNJK7Jzs3GvHVp5GkNHnUbb5F33S5Mi"
    "DGWsebnvJzPncLh9a3sDIslRFYgx5ScL7pxk7nKFxL7n6K4YMs712+8z9dxLtk8C1y25tKkz+560qWooZmPqEGn8crZhmCNXhlx7dqXwaDsA"
    "8RLRtyJAVmuysD98y+JyQJaWXAd0403nCW3Wm/nhydQbbEmYlDHt0kZebTi7zx2Z2nwco+Ae8s6QYcm8iJFlGypYstqDyd+iUZ/RZ4cSxcjK"
    "hQqXzsl8GhFz+7A5OROh2X3aJ1+7+CPmrLZt4SKs/h6a3Ud9crdwiZEftk8I5EG7kXUnyH1NjJGfuKdH7ofItL3/gYjqmH0WLoDd9u8aK8Xb"
    "MRuQmwgZv/GQ+3GdNGQd+g0URkZCJPy2nVzZtn/fXzXmMtmoYIiMBLn4VUumH8XI+GReoYnMkdlPA2RT3ON/H52EKmYB4e2xI+8FAo731vjn"
    "88jcZRPy+xFync+rbYJyl03IQ5voVyvTMaO6yY4biz0UCUZP55b0+MTd117oUGhtOmaQv7T39QIdhA6yTHs5t3DKBxepNL6tlK6dzSTjt95M"
    "qGgpqvqG5OuFZPIuRn4TIG/N34TvkbFqtqiHHHvwwGNf2j9J7NLJl5NL+E+N0cfMU2EotPKmfjJZ3wrx1ETil9EdXEg78XpgfeRAPRkcqveU"
    "r64Hl+gqtjK/VSIhF8Hd9fbRJVxviZ76HUsWMuSsJes1lI9c+Y00DZF32vUILtB3YWnQii8kI0veQp/AfS5phb1kFiCTE73ukVtox1etrKGV"
    "/6EzHiKbuPrgAO2R9cJtaEU1OU8hT3c4ZHuqdgQX5GrqvDJ7Zr4dEz85syqVF3nrTappmSjdYe/BccgVUyOgT3GVZzC5fpQX/g2DkCG3fa5x"
    "JVsFqsabjnKX+4s14Qi5QDX5l/Ot9aQ6mSmdkEQW0EZNnV05spjESGeqSiOP1c5uLtVMx0c5TDa3mUauJmSBnq6iruoXoI9NIouJNCT63BTw"
    "OzR1dEuwCBz+51LyF0YzdGjGVAHW8MMqbp4n0rDkZ4K3E0aB1v+57zlYHIpM7PNfP67bfS6lCFx40BPPjDaLhhlt2Aji+IOd98QtNqfWn1cJ"
    "ZHVcTHttwuZymyoJRzMFSyJD8ji204/7yN7MvXD9vMwFt7Xd6IejmYdpZAXvnogD7isNXW+jJGlcFKCXvDale2uQLFga+RT9AwWOgSC1SyT/"
    "drgPnlBiVO6kzEE9gIMqKkllUR8uISfVLv2DJ5AZLdLR/Kqof/w0GhSYPgvezFpdmZlUpgzgeT045Poohfy6SCHrhepgW7PMb4/8rvAffHjI"
    "aZN7GCgljeAZAp857r8lH5PpUWCVOTBi0wV4v0ZtM3n2jL5tjdwCMj4anxEMD7w/pJIni6csSi7yFPLUy2bHfUObjxdYtM6LuEb/rU/uSndm"
    "/bldTxaFmdDXyS/C4Hdfo95zTaQGJveUbGP+y+I6SC7ttFgNoYSiZz5xseY6FyJcFruwXVh9zKUS4UHkNX283GRRaHrQ/leWLNBQHHhwV9NC"
    "CHrphK59RY57sSDufU7uju0CVK7AGL4mQm5GZM5H5lf4yNexL4qwAyJ7Jn3omqW7AzGRM1Plw+gQ9nzcMzHssnTXqceZF+xUlWFHa4ZwXYmk"
    "rSrEh9LSv47iykyTL1QdNqZC60PW+0oBc64wvrCOSkrAUYqYmT6Xq0daf6ZvX6HjEZnqtX8BkJss9v0wOjz/9/31YpuNo1uqROakOySzuLnj"
    "TjvgstOuCjMZP4Eg4jHY4bvVCT40kxw5G5OrOPn8yi2fGDST8JkqHtsL1MNdigSy2e+VntAHofdn0p7EsgGZ++Jm0Lk8yCB9Fw/aqcQHZJYk"
    "544sAQWt6JYzLLkzHo9WIUc6WUBDmKtu36jLTFgJ+iyN3KAdlD0DQkqzFGmszXbkqhNH4vftiEMJOokzI05RrHI51l9NYgKlJk+CF57FqO5d"
    "61msYXRkYpWj+VUS+dLjG5g6rjtvuCoh1JrQ5uM0geSwe2erYiuV8VIVnAwXtNUEtrN05cGt2ywGMUmVpB2gk2jM4aYrPQMkHb5xtf9fBx0X"
    "FMufWPLqsfnJKuibpsulCrnxgdZpl2FsDmvaGkqTXGUnusMmGjxW00VvzY8VbWwdnk5SYrQuEKRAZjdaXQTjA9zTvisbLJ78x5L1VVk+Pk7g"
    "60WG5vqm+uv2I25Jwl0qgjQWyX2eT/bB6Po3/W4f2Zl1lyWAfnPebnD9wH1fRwE+j9IL93xkWzqrbkfFZZ08NUpV4XZTVfaCENFfNcouGPOT"
    "uyJltOo+ZASjg7dOGODzKK2UTWQ/1terXopIVg2X7Oa0m0jr+T/0g3Wg0pWaLnrfvD1bzSs83SiSTArWDVMeJKP81UiFiefQNOvWmC87RfOT"
    "bRJn/tfRoQPxnIkR+1Q/vVavLxzZf3hqy0Ru942fyfT07eVio2l7OnA7F1diuIgHzovE0Kw2NglY+vaRpI0S+Uv1JHZ4iqjs26h4QqCePPjD"
    "lZoEZgVwg2Xf+pXOyPqejDLmnlytyDxIHgSctZPNO89XAWUmCBIXbshIMKGEr59UXc0l7jsv5VeK/YlfGoNeDuO9IpC9y09WffYWS9SLLIbI"
    "hXrnUv2mW9GDI6/VmV0ezZIhyjw5o9cwXjKroWfDeVw1cr3oy14KbFwsuFXFG+BwkZxWUTIy3z51cqSNv3oF7nHryAuSeCKZv5ym2JTr+Q8Z"
    "hQSyLcGaOy8+PbYBi2FylVpUHffSTUdHTWBhyTy5WjuBQkn3tx85cq+uJUmv9Y19eyJtvkvZ9rP39vSSnrzv1uJJbgmVMcYbpOtttg+3Vd18"
    "0unbK4zNTjoe93mrpS3r/ARJyZ1bLpoK3bW7dtfu2ubb/wFHb5Hz"
)


@lru_cache(maxsize=1)
def _land() -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(base64.b64decode(_MASK)), dtype=np.uint8)
    land = np.unpackbits(bits)[: _ROWS * _COLUMNS].reshape(_ROWS, _COLUMNS).astype(bool)
    # Near land: the cell or one of its eight neighbours (longitude wraps around).
    near = land.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted = np.roll(land, dc, axis=1)
            if dr > 0:
                shifted = np.vstack([np.zeros((dr, _COLUMNS), bool), shifted[:-dr]])
            elif dr < 0:
                shifted = np.vstack([shifted[-dr:], np.zeros((-dr, _COLUMNS), bool)])
            near |= shifted
    return near


def near_land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where a point (WGS84 degrees, in range) lies within about one cell (≈ 50 km) of land."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    row = np.clip(((lat + 90.0) / RESOLUTION_DEG).astype(int), 0, _ROWS - 1)
    column = np.clip(((lon + 180.0) / RESOLUTION_DEG).astype(int), 0, _COLUMNS - 1)
    return _land()[row, column]


def _build(shapefile: str) -> str:  # pragma: no cover - run by hand to rebuild _MASK
    import pyogrio
    import shapely

    land = shapely.union_all(pyogrio.read_dataframe(shapefile).geometry.values)
    shapely.prepare(land)
    lats = np.arange(-90, 90, RESOLUTION_DEG)
    lons = np.arange(-180, 180, RESOLUTION_DEG)
    west, south = np.meshgrid(lons, lats)
    cells = shapely.box(west.ravel(), south.ravel(), west.ravel() + RESOLUTION_DEG, south.ravel() + RESOLUTION_DEG)
    mask = shapely.intersects(land, cells).reshape(south.shape)
    return base64.b64encode(zlib.compress(np.packbits(mask.ravel()).tobytes(), 9)).decode()

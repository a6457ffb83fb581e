# SPDX-License-Identifier: AGPL-3.0-or-later
"""Small pieces of each administrative area's outline, kept by a trigger (see ``AdminAreaPiece``).

The trigger rewrites an area's pieces whenever the area is inserted, its
outline or level changes, or it is deleted (and deletes them all on TRUNCATE), so
no write path can leave them stale. Existing areas are cut once here.
"""
import django.contrib.gis.db.models.fields
import django.db.models.deletion
from django.db import migrations, models

# twin.models.admin_areas.PIECE_MAX_VERTICES when this was written (a migration keeps its own copy)
PIECE_MAX_VERTICES = 96

TRIGGERS = f"""
CREATE FUNCTION twin_adminarea_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM twin_adminareapiece WHERE area_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO twin_adminareapiece (area_id, level, geom)
        SELECT NEW.id, NEW.level, ST_Subdivide(NEW.geom, {PIECE_MAX_VERTICES});
    END IF;
    RETURN NULL;
END $$;

-- DELETE, not TRUNCATE: a TRUNCATE naming both tables (Django's flush) would find the pieces "in use".
CREATE FUNCTION twin_adminarea_pieces_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM twin_adminareapiece;
    RETURN NULL;
END $$;

CREATE TRIGGER twin_adminarea_pieces AFTER INSERT OR DELETE OR UPDATE OF id, geom, level ON twin_adminarea
    FOR EACH ROW EXECUTE FUNCTION twin_adminarea_pieces();
CREATE TRIGGER twin_adminarea_pieces_truncate AFTER TRUNCATE ON twin_adminarea
    FOR EACH STATEMENT EXECUTE FUNCTION twin_adminarea_pieces_truncate();

INSERT INTO twin_adminareapiece (area_id, level, geom)
SELECT id, level, ST_Subdivide(geom, {PIECE_MAX_VERTICES}) FROM twin_adminarea;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS twin_adminarea_pieces_truncate ON twin_adminarea;
DROP TRIGGER IF EXISTS twin_adminarea_pieces ON twin_adminarea;
DROP FUNCTION IF EXISTS twin_adminarea_pieces_truncate();
DROP FUNCTION IF EXISTS twin_adminarea_pieces();
"""


class Migration(migrations.Migration):

    dependencies = [("twin", "0004_feature_fillfactor")]

    operations = [
        migrations.CreateModel(
            name="AdminAreaPiece",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("level", models.PositiveSmallIntegerField(choices=[
                    (0, "Quốc gia / Country"), (1, "Tỉnh, thành phố / Province"), (2, "Quận, huyện / District"),
                    (3, "Phường, xã / Ward or commune")])),
                ("geom", django.contrib.gis.db.models.fields.GeometryField(srid=4326)),
                ("area", models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                           related_name="+", to="twin.adminarea")),
            ],
        ),
        migrations.RunSQL(TRIGGERS, reverse_sql=DROP_TRIGGERS),
    ]

"""Count the workers a document's processing has lost, for the poison-document cap."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("documents", "0003_budget_failure_kinds")]

    operations = [
        migrations.AddField(
            model_name="document",
            name="worker_losses",
            field=models.PositiveIntegerField(default=0),
        ),
    ]

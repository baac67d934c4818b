using System.Globalization;
using DuckDB.NET.Data;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>A run's Parquet outputs read by DuckDB, as a user without Fer would: names, not codes, say what is what.</summary>
[Collection(EndToEndCollection.Name)]
public class PublishedTablesTests
{
    private static List<object?[]> Query(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (int i = 0; i < row.Length; i++) row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    private static string Sql(string path) => "'" + path.Replace("'", "''") + "'";

    [Fact]
    public async Task ProbabilitiesAndFaceTablesReadInDuckDbWithIdsSplitsAndClassNames()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        var run = flow.LatestRunDir();
        var file = Sql(Path.Combine(run, "probabilities.parquet"));
        var classes = Fer.Core.Data.FaceSet.Fer2013Classes;

        var columns = Query($"DESCRIBE SELECT * FROM {file}").Select(r => ((string)r[0]!, (string)r[1]!)).ToList();
        Assert.Equal([("id", "BIGINT"), ("split", "VARCHAR"), ("label", "VARCHAR"), ("predicted", "VARCHAR"), .. classes.Select(c => (c, "FLOAT"))], columns);

        var record = RunRecord.TryRead(run)!;
        var predict = record.Stages.Single(s => s.Stage == "predict");
        var metrics = predict.MetricsAs<Fer.Flow.Stages.EnsembleMetrics>()!;
        var perSplit = Query($"SELECT split, count(*), avg(CASE WHEN label = predicted THEN 1.0 ELSE 0.0 END) FROM {file} GROUP BY split ORDER BY split")
            .ToDictionary(r => (string)r[0]!, r => (Count: Convert.ToInt64(r[1], CultureInfo.InvariantCulture), Accuracy: Convert.ToDouble(r[2], CultureInfo.InvariantCulture)));
        Assert.Equal(["test", "valid"], perSplit.Keys);
        Assert.Equal(predict.Rows["valid"], perSplit["valid"].Count);
        Assert.Equal(42, perSplit["test"].Count);
        // The table's labels and predictions give back the accuracies the run reported.
        Assert.Equal(metrics.ValidAccuracy, perSplit["valid"].Accuracy, 6);
        Assert.Equal(metrics.Test!.Accuracy, perSplit["test"].Accuracy, 6);

        // Each row's probabilities sum to one and "predicted" names the largest.
        var sum = string.Join(" + ", classes.Select(c => $"\"{c}\""));
        var greatest = $"greatest({string.Join(", ", classes.Select(c => $"\"{c}\""))})";
        var byName = string.Join(" ", classes.Select(c => $"WHEN \"{c}\" = {greatest} THEN '{c}'"));
        var bad = Query($"SELECT count(*) FILTER (WHERE abs({sum} - 1) > 1e-4), count(*) FILTER (WHERE predicted <> CASE {byName} END) FROM {file}").Single();
        Assert.Equal((0L, 0L), (Convert.ToInt64(bad[0], CultureInfo.InvariantCulture), Convert.ToInt64(bad[1], CultureInfo.InvariantCulture)));

        // The test rows are the submission's images, in its order, with its predicted classes.
        var submission = File.ReadAllLines(Path.Combine(run, "predictions.csv")).Skip(1).Select(l => l.Split(','))
            .Select(p => (long.Parse(p[0], CultureInfo.InvariantCulture), classes[int.Parse(p[1], CultureInfo.InvariantCulture)])).ToList();
        var testRows = Query($"SELECT id, predicted FROM {file} WHERE split = 'test'").Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), (string)r[1]!)).ToList();
        Assert.Equal(submission, testRows);

        // The cached face tables name each row's usage as Kaggle's file does.
        var faces = Directory.EnumerateFiles(Path.Combine(flow.Artifacts, "cache", "ingest"), "faces.parquet", SearchOption.AllDirectories).Single();
        var usage = Query($"SELECT usage, count(*) FROM {Sql(faces)} GROUP BY usage ORDER BY usage")
            .Select(r => ((string)r[0]!, Convert.ToInt64(r[1], CultureInfo.InvariantCulture))).ToList();
        Assert.Equal([("PrivateTest", 42L), ("Training", 238L)], usage);
    }
}

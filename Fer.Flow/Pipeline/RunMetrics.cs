using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fer.Flow.Pipeline;

/// <summary>The run's metrics.json: each stage publishes a fragment; fragments merge key by key (objects deeply).</summary>
public static class RunMetrics
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Merge(string runMetricsPath, string fragmentPath)
    {
        var target = File.Exists(runMetricsPath) ? JsonNode.Parse(File.ReadAllText(runMetricsPath)) as JsonObject : null;
        target ??= new JsonObject();
        var fragment = JsonNode.Parse(File.ReadAllText(fragmentPath)) as JsonObject
            ?? throw new InvalidDataException($"{fragmentPath}: a metrics fragment must be a JSON object");
        MergeInto(target, fragment);
        var tmp = runMetricsPath + ".tmp";
        File.WriteAllText(tmp, target.ToJsonString(Indented));
        File.Move(tmp, runMetricsPath, overwrite: true);
    }

    private static void MergeInto(JsonObject target, JsonObject source)
    {
        foreach (var (key, value) in source.ToList())
        {
            if (value is JsonObject obj && target[key] is JsonObject existing) MergeInto(existing, obj);
            else target[key] = value?.DeepClone();
        }
    }

    /// <summary>Writes a fragment object to a stage's publish folder.</summary>
    public static void WriteFragment(string path, object fragment)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(fragment, new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }));
        File.Move(tmp, path, overwrite: true);
    }
}

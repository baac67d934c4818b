using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Photos;

/// <summary>One small trained run (synthetic faces, seed CNN and DNN for 2 epochs, fitted ensemble with flip TTA) shared by the photo tests.</summary>
public sealed class TrainedRunFixture : IAsyncLifetime
{
    public TempDir Dir { get; } = new();
    public string Artifacts => Dir["artifacts"];
    public string RunDir { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var script = Dir["photos.fsx"];
        File.WriteAllText(script, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            flow "photos" [
                ingest [ "count" => 420; "seed" => 3; "test_fraction" => 0.15 ]
                augment [ "flip" => true ]
                split [ "valid_fraction" => 0.2; "seed" => 3 ]
                train [ model "cnn" "seed-cnn" [ "epochs" => 2; "batch_size" => 64; "seed" => 3 ]
                        model "dnn" "seed-dnn" [ "epochs" => 2; "batch_size" => 64; "seed" => 3 ] ] []
                predict [ "flip_tta" => true ]
            ]
            """);
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(script, Artifacts, [], RunMode.Default, null, "cpu", Console: false), errors);
        if (code != 0) throw new InvalidOperationException($"training the test run failed ({code}): {errors}");
        RunDir = Directory.GetDirectories(Path.Combine(Artifacts, "runs")).Single();
    }

    public Task DisposeAsync() { Dir.Dispose(); return Task.CompletedTask; }
}

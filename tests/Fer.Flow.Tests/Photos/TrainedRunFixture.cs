using Fer.Flow.Tests.EndToEnd;

namespace Fer.Flow.Tests.Photos;

/// <summary>
/// One small trained run (synthetic faces, seed CNN and DNN for 2 epochs, fitted ensemble with flip TTA) for the photo
/// tests: a copy of the tiny flow's shared finished run, so no test process trains it twice.
/// </summary>
public sealed class TrainedRunFixture : IAsyncLifetime
{
    private TinyFlow? _flow;

    public string Artifacts => _flow?.Artifacts ?? throw new InvalidOperationException("the fixture is not initialised");
    public string RunDir { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _flow = await TinyFlow.CopyOfFinishedRunAsync();
        RunDir = Directory.GetDirectories(Path.Combine(Artifacts, "runs")).Single();
    }

    public Task DisposeAsync() { _flow?.Dispose(); return Task.CompletedTask; }
}

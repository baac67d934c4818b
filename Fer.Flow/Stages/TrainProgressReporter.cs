using Fer.Core.Training;
using Serilog;
using Spectre.Console;

namespace Fer.Flow.Stages;

/// <summary>
/// Training progress. On a terminal: a live Spectre.Console display with one row per member being trained
/// (epoch, batch, loss, accuracy, images/s, ETA and a bar over all its epochs), log events printed above it.
/// Otherwise (CI, a pipe): a plain line every 15 seconds, so logs stay readable.
/// </summary>
public sealed class TrainProgressReporter(bool interactive, ILogger log) : IProgress<TrainProgress>, IDisposable
{
    private DateTime _lastPlain = DateTime.MinValue;
    private LiveTrainingDisplay.Row? _row;

    public void Report(TrainProgress p)
    {
        if (interactive)
        {
            _row ??= LiveTrainingDisplay.Add(p.Model);
            if (_row is not null) { _row.Update(p); return; }
        }
        if (DateTime.UtcNow - _lastPlain > TimeSpan.FromSeconds(15))
        {
            _lastPlain = DateTime.UtcNow;
            log.Debug("Progress {Model} epoch {Epoch}/{Epochs} batch {Batch}/{Batches} loss {Loss:0.000} accuracy {Accuracy:0.000} {ImagesPerSecond:0} images/s", p.Model, p.Epoch, p.Epochs, p.Batch, p.Batches, p.Loss, p.Accuracy, p.ImagesPerSecond);
            Console.WriteLine(Line(p));
        }
    }

    internal static string Line(TrainProgress p) =>
        $"{p.Model}: epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:0.000} acc {p.Accuracy:0.000} {p.ImagesPerSecond:0} img/s ETA {p.Eta:hh\\:mm\\:ss}";

    public void Dispose() => _row?.Finish();
}

/// <summary>
/// The one live display shared by every member training at once (Spectre.Console allows one live display at a
/// time): started by the first member, ended when the last one finishes.
/// </summary>
internal static class LiveTrainingDisplay
{
    private static readonly Lock Gate = new();
    private static ProgressContext? _context;
    private static TaskCompletionSource? _stop;
    private static Task? _display;
    private static int _rows;

    /// <summary>True while the display runs: console log lines must go above it (through Spectre).</summary>
    public static bool Active { get { lock (Gate) return _context is not null; } }

    public sealed class Row(ProgressTask task)
    {
        private bool _finished;

        public void Update(TrainProgress p)
        {
            task.Description = Markup.Escape(TrainProgressReporter.Line(p));
            task.MaxValue = Math.Max(1, p.Epochs * p.Batches);
            task.Value = (p.Epoch - 1) * p.Batches + p.Batch;
        }

        public void Finish()
        {
            if (_finished) return;
            _finished = true;
            task.Value = task.MaxValue;
            task.StopTask();
            Release();
        }
    }

    /// <summary>A row for this member, starting the display if none runs; null when the console cannot show one.</summary>
    public static Row? Add(string member)
    {
        lock (Gate)
        {
            if (_context is null)
            {
                var started = new TaskCompletionSource<ProgressContext>(TaskCreationOptions.RunContinuationsAsynchronously);
                _stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var stop = _stop.Task;
                _display = AnsiConsole.Progress()
                    .AutoClear(false).AutoRefresh(true)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                    .StartAsync(async ctx => { started.TrySetResult(ctx); await stop; ctx.Refresh(); });
                // The display's failure to start (e.g. the terminal went away) leaves plain lines.
                var first = Task.WhenAny(started.Task, _display).GetAwaiter().GetResult();
                if (first != started.Task) { _stop = null; _display = null; return null; }
                _context = started.Task.Result;
            }
            _rows++;
            return new Row(_context.AddTask(Markup.Escape(member), autoStart: true));
        }
    }

    private static void Release()
    {
        Task? display = null;
        lock (Gate)
        {
            if (--_rows > 0) return;
            _stop?.TrySetResult();
            display = _display;
            _context = null; _stop = null; _display = null;
        }
        display?.GetAwaiter().GetResult();
    }

    /// <summary>Prints a rendered log line above the live display.</summary>
    public static void WriteAbove(string text) => AnsiConsole.Write(new Text(text));
}

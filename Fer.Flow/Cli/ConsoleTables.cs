using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fer.Flow.Cli;

/// <summary>
/// Spectre.Console tables written to a command's stdout: rounded borders and colour on a terminal; on a pipe or
/// file (or a test's StringWriter) plain text, no escape codes, wide enough that rows do not wrap.
/// </summary>
public static class ConsoleTables
{
    public static IAnsiConsole For(TextWriter writer)
    {
        bool terminal = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        if (!terminal) console.Profile.Width = 400;
        return console;
    }

    /// <summary>A table with these column headers; on a pipe, borders are plain ASCII so the text greps well.</summary>
    public static Table Create(TextWriter writer, params string[] columns)
    {
        bool terminal = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var table = new Table { Border = terminal ? TableBorder.Rounded : TableBorder.Simple };
        foreach (var c in columns) table.AddColumn(new TableColumn(new Text(c, new Style(decoration: Decoration.Bold))));
        return table;
    }

    /// <summary>A row of plain texts (never parsed as Spectre markup: keys hold brackets).</summary>
    public static void AddTextRow(this Table table, params string[] cells) =>
        table.AddRow(cells.Select(c => (IRenderable)new Text(c)).ToArray());

    public static void Write(TextWriter writer, Table table) => For(writer).Write(table);
}

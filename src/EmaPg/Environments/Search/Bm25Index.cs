using System.Diagnostics;
using EmaPg.Common;
using Lucene.Net.Analysis;
using Lucene.Net.Analysis.En;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using LuceneDirectory = Lucene.Net.Store.Directory;

namespace EmaPg.Environments.Search;

/// <summary>What <see cref="Bm25Index.Build"/> did.</summary>
public sealed record IndexBuildReport(string Corpus, string IndexDirectory, long Passages, double Seconds);

/// <summary>
/// A BM25 index of a Search-R1 corpus in a Lucene 4.8 directory, with pyserini's defaults: English analysis (Porter
/// stemming, stop words) and BM25 with k1 = 0.9, b = 0.4. The passage's full "contents" (title line and text) is both
/// indexed and stored, so a search returns exactly the corpus line's passage.
/// </summary>
public static class Bm25Index
{
    internal const string IdField = "id", ContentsField = "contents", BodyField = "body";
    internal const float K1 = 0.9f, B = 0.4f;
    internal static readonly LuceneVersion Version = LuceneVersion.LUCENE_48;

    internal static Analyzer CreateAnalyzer() => new EnglishAnalyzer(Version);
    internal static Similarity CreateSimilarity() => new BM25Similarity(K1, B);

    /// <summary>
    /// Streams <paramref name="corpusPath"/> into a new index at <paramref name="outDir"/> (which must not exist or be
    /// empty); the corpus is never held in memory. <paramref name="progress"/> receives the passage count every 100 000 passages.
    /// </summary>
    public static IndexBuildReport Build(string corpusPath, string outDir, Action<long>? progress = null)
    {
        Check.DirectoryPath(outDir, "--out");
        if (System.IO.Directory.Exists(outDir) && System.IO.Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new UserError($"--out '{outDir}' is not empty; an index is built into a new or empty directory.");
        if (!File.Exists(corpusPath)) throw new UserError($"--corpus '{corpusPath}' does not exist.");
        var sw = Stopwatch.StartNew();
        System.IO.Directory.CreateDirectory(outDir);
        long count = 0;
        using (var dir = FSDirectory.Open(outDir))
        using (var analyzer = CreateAnalyzer())
        using (var writer = new IndexWriter(dir, new IndexWriterConfig(Version, analyzer)
               { OpenMode = OpenMode.CREATE, Similarity = CreateSimilarity(), RAMBufferSizeMB = 128 }))
        {
            // One document and its fields are reused for every passage (Lucene's recommended bulk-indexing pattern).
            var id = new StringField(IdField, "", Field.Store.YES);
            var stored = new StoredField(ContentsField, "");
            var body = new TextField(BodyField, "", Field.Store.NO);
            var doc = new Document { id, stored, body };
            foreach (var p in CorpusReader.Read(corpusPath))
            {
                id.SetStringValue(p.Id);
                stored.SetStringValue(p.Contents);
                body.SetStringValue(p.Contents);
                writer.AddDocument(doc);
                if (++count % 100_000 == 0) progress?.Invoke(count);
            }
            if (count == 0) throw new UserError($"--corpus '{corpusPath}' holds no passages.");
            writer.Commit();
        }
        return new IndexBuildReport(corpusPath, outDir, count, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Builds an index of in-memory passages (the embedded world's corpus, tests) in a RAM directory.</summary>
    public static Bm25Retriever InMemory(IEnumerable<Passage> passages)
    {
        var dir = new RAMDirectory();
        using (var analyzer = CreateAnalyzer())
        using (var writer = new IndexWriter(dir, new IndexWriterConfig(Version, analyzer) { OpenMode = OpenMode.CREATE, Similarity = CreateSimilarity() }))
        {
            foreach (var p in passages)
                writer.AddDocument(new Document
                {
                    new StringField(IdField, p.Id, Field.Store.YES),
                    new StoredField(ContentsField, p.Contents),
                    new TextField(BodyField, p.Contents, Field.Store.NO),
                });
            writer.Commit();
        }
        return new Bm25Retriever(dir, "(in memory)");
    }

    /// <summary>Opens an index built by <see cref="Build"/>.</summary>
    public static Bm25Retriever Open(string indexDir)
    {
        if (!System.IO.Directory.Exists(indexDir)) throw new UserError($"--index '{indexDir}' does not exist (build one with 'emapg index build').");
        var dir = FSDirectory.Open(indexDir);
        if (!DirectoryReader.IndexExists(dir))
        {
            dir.Dispose();
            throw new UserError($"--index '{indexDir}' holds no Lucene index (build one with 'emapg index build').");
        }
        return new Bm25Retriever(dir, indexDir);
    }
}

/// <summary>
/// In-process BM25 retrieval over a Lucene index. A query is analysed like the passages and searched as a bag of words
/// (a disjunction of its terms, as pyserini does), so no query syntax can make it fail. Thread-safe.
/// </summary>
public sealed class Bm25Retriever : IRetriever, IDisposable
{
    private readonly LuceneDirectory _dir;
    private readonly DirectoryReader _reader;
    private readonly IndexSearcher _searcher;
    private readonly Analyzer _analyzer = Bm25Index.CreateAnalyzer();

    internal Bm25Retriever(LuceneDirectory dir, string name)
    {
        _dir = dir;
        Name = name;
        _reader = DirectoryReader.Open(dir);
        _searcher = new IndexSearcher(_reader) { Similarity = Bm25Index.CreateSimilarity() };
    }

    public string Name { get; }
    public int Count => _reader.NumDocs;

    public IReadOnlyList<IReadOnlyList<RetrievedPassage>> Retrieve(IReadOnlyList<string> queries, int topK)
    {
        Check.Range("topk", topK, 1, 1000);
        return queries.Select(q => (IReadOnlyList<RetrievedPassage>)Search(q, topK)).ToList();
    }

    private List<RetrievedPassage> Search(string query, int topK)
    {
        var terms = Terms(query);
        if (terms.Count == 0) return [];
        var bq = new BooleanQuery();
        foreach (var t in terms.Take(BooleanQuery.MaxClauseCount)) bq.Add(new TermQuery(new Term(Bm25Index.BodyField, t)), Occur.SHOULD);
        var hits = _searcher.Search(bq, topK).ScoreDocs;
        return hits.Select(h =>
        {
            var d = _searcher.Doc(h.Doc);
            return new RetrievedPassage(new Passage(d.Get(Bm25Index.IdField), d.Get(Bm25Index.ContentsField)), h.Score);
        }).ToList();
    }

    /// <summary>The query's distinct analysed terms in order of first appearance.</summary>
    private List<string> Terms(string query)
    {
        var terms = new List<string>();
        var seen = new HashSet<string>();
        using var ts = _analyzer.GetTokenStream(Bm25Index.BodyField, new StringReader(query));
        var term = ts.AddAttribute<ICharTermAttribute>();
        ts.Reset();
        while (ts.IncrementToken())
        {
            var s = term.ToString();
            if (seen.Add(s)) terms.Add(s);
        }
        ts.End();
        return terms;
    }

    public void Dispose()
    {
        _reader.Dispose();
        _analyzer.Dispose();
        _dir.Dispose();
    }
}

# bench/chart.gp — the chart of BENCHMARKS.md, drawn from the results file
# bench/run.sh writes (one row per benchmark row, "-" for a missing figure):
#   "label\n(req/s ratio)" crmblob_req/s reference_req/s crmblob_p99_ms reference_p99_ms
#   "reference name" "label\n(p99 ratio)"
# Usage: gnuplot -e "data='bench/results.dat'; out='bench/chart.png'" bench/chart.gp
if (!exists("data")) data = 'bench/results.dat'
if (!exists("out")) out = 'bench/chart.png'

set terminal pngcairo size 1200,900 font "sans,10" noenhanced
set output out
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics mytics
set logscale y
set format y "%.0f"
set xtics nomirror rotate by 0 offset 0,0 font ",9"
set key top right
set bmargin 4
set multiplot layout 2,1 title "crmblob vs its references (wrk, loopback, keep-alive); crmblob ÷ reference under each pair"

set title "throughput (higher is better)"
set ylabel "requests/s (log)"
plot data using 2:xtic(1) title "crmblob" lc rgb "#1f77b4", \
     ''   using 3 title "reference" lc rgb "#aaaaaa"

set title "latency (lower is better)"
set ylabel "p99 ms (log)"
set format y "%g"
plot data using 4:xtic(7) title "crmblob" lc rgb "#1f77b4", \
     ''   using 5 title "reference" lc rgb "#aaaaaa"

unset multiplot

(function(){
const D=JSON.parse(document.getElementById('data').textContent);
const COLORS={succeeded:'#2e9d5b',cancelled:'#8b8f97',running:'#3a7bd5',failed:'#d43d3d'};
const cv=document.getElementById('timeline'),tip=document.getElementById('tip');
const note=document.getElementById('timeline-note');
const n=D.start.length;
if(!n){note.textContent='No job has started yet.';cv.style.display='none';return;}
let tmax=0;for(let i=0;i<n;i++){if(D.end[i]>tmax)tmax=D.end[i];}
tmax=tmax||1;
const rowsMax=160;
const per=Math.max(1,Math.ceil(D.lanes/rowsMax));
const rows=Math.ceil(D.lanes/per);
const rowH=Math.max(2,Math.min(14,Math.floor(420/rows)));
const L=48,B=22;
function fmt(s){if(s<60)return s.toFixed(s<10?1:0)+'s';if(s<3600)return Math.floor(s/60)+'m'+
String(Math.round(s%60)).padStart(2,'0')+'s';return Math.floor(s/3600)+'h'+
String(Math.floor(s%3600/60)).padStart(2,'0')+'m';}
function draw(){
 const dpr=window.devicePixelRatio||1,W=cv.clientWidth||900,H=rows*rowH+B+4;
 cv.width=W*dpr;cv.height=H*dpr;cv.style.height=H+'px';
 const g=cv.getContext('2d');g.setTransform(dpr,0,0,dpr,0,0);
 g.fillStyle='#fff';g.fillRect(0,0,W,H);
 const sx=(W-L-8)/tmax;
 for(let k=0;k<D.statuses.length;k++){
  g.fillStyle=COLORS[D.statuses[k]]||'#999';
  for(let i=0;i<n;i++){if(D.status[i]!==k)continue;
   const x=L+D.start[i]*sx,w=Math.max(1,(D.end[i]-D.start[i])*sx);
   const y=2+Math.floor(D.lane[i]/per)*rowH;
   g.fillRect(x,y,w,Math.max(1,rowH-(rowH>3?1:0)));}}
 g.fillStyle='#4b5563';g.font='11px sans-serif';g.strokeStyle='#dde1e7';
 const steps=6;for(let s=0;s<=steps;s++){const t=tmax*s/steps,x=L+t*sx;
  g.beginPath();g.moveTo(x,2);g.lineTo(x,H-B+2);g.stroke();
  g.textAlign=s===0?'left':(s===steps?'right':'center');g.fillText(fmt(t),x,H-6);}
 g.textAlign='right';g.fillText(per>1?'lanes':'lane',L-6,12);
 g.fillText(String(D.lanes),L-6,2+rows*rowH);
 cv._sx=sx;
}
draw();window.addEventListener('resize',draw);
const byRow=new Map();
for(let i=0;i<n;i++){const r=Math.floor(D.lane[i]/per);
 if(!byRow.has(r))byRow.set(r,[]);byRow.get(r).push(i);}
cv.addEventListener('mousemove',function(ev){
 const rect=cv.getBoundingClientRect(),x=ev.clientX-rect.left,y=ev.clientY-rect.top;
 const r=Math.floor((y-2)/rowH),t=(x-L)/cv._sx,c=byRow.get(r)||[];
 const slack=2/cv._sx;let hit=-1;
 for(const i of c){if(D.start[i]-slack<=t&&t<=D.end[i]+slack){hit=i;break;}}
 if(hit<0){tip.style.display='none';return;}
 const nm=D.name?D.name[hit]:'';
 tip.textContent='job '+D.index[hit]+' '+nm+' - '+D.statuses[D.status[hit]]+', '+
  fmt(D.end[hit]-D.start[hit])+' (from +'+fmt(D.start[hit])+')';
 tip.style.left=(x+14)+'px';tip.style.top=(y+8)+'px';tip.style.display='block';});
cv.addEventListener('mouseleave',function(){tip.style.display='none';});
note.textContent=n+' jobs on '+D.lanes+' lanes'+(per>1?' ('+per+' lanes per row)':'')+
 ', '+fmt(tmax)+' from the first start';
})();
